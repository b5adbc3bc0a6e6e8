"""Coverage-guided fuzzing of the artifact scanner (atheris): harnesses, seed corpora, regression files."""
