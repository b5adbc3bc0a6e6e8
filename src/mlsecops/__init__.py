"""mlsecops: security checks and controls for every stage of the machine-learning lifecycle.

The packages form layers; imports point downward only (see docs/architecture.md)::

    cli/  web/                     thin: parse, call the library, render
    runtime/                       guard service in front of a model
    pipeline/  registry/           run a pipeline and gate it on policy; model registry
    assess/  harden/  monitor/     attacks, audits, training, detectors
    supplychain/  data/  models/   artifacts, datasets, model adapters
    report/  store/                renderers; database, artifact store, audit trail
    core/                          Finding, Severity, Report, errors, settings, the check catalogue
"""

from mlsecops._version import __version__

__all__ = ["__version__"]
