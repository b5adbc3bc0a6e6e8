"""TensorFlow operations that act outside the tensor computation: the table behind the SavedModel and
TFLite (Flex delegate) scanners.

A graph runs only registered kernels, so a SavedModel cannot carry native code; what it can carry is a
call to a kernel that touches the host. Severity follows what the op can do with inputs the model author
chooses, with no help from the caller:

=========  ===========================================================================================
critical   writes files, runs Python, or ships tensors to a debugger URL (``WriteFile``, ``PyFunc``,
           ``EagerPyFunc``, the ``Debug*`` writers, dataset ops that save to a path)
high       reads arbitrary files or lists directories, opens databases or network services
           (``ReadFile``, ``MatchingFiles``, reader ops, ``DataServiceDataset``, ``SqlDataset``,
           filesystem configuration, summary writers that pick their own log directory)
medium     file access that real models also use, reported so the path can be reviewed
           (dataset readers of record files, summary writes, ``ImmutableConst`` memory maps, proto
           codecs with a descriptor source)
=========  ===========================================================================================

Not in the table, on purpose: ``SaveV2``/``RestoreV2``/``MergeV2Checkpoints``/``ShardedFilename``
(every SavedModel's saver function has them, with the path given at call time),
``InitializeTableFromTextFile*`` (vocabulary assets), ``PrintV2`` to stderr (a ``file://`` output
stream is judged separately).
"""

from __future__ import annotations

from mlsecops.core.severity import Severity

__all__ = ["TF_DANGEROUS_OPS", "judge_tf_op"]

_C, _H, _M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

TF_DANGEROUS_OPS: dict[str, tuple[Severity, str]] = {
    # -- runs Python in the loading process (the function is looked up by token in its registry)
    "PyFunc": (_C, "runs a Python function (tf.py_function / numpy_function)"),
    "PyFuncStateless": (_C, "runs a Python function (tf.numpy_function)"),
    "EagerPyFunc": (_C, "runs a Python function (tf.py_function)"),
    # -- writes files
    "WriteFile": (_C, "writes a tensor's bytes to a file path"),
    "Save": (_M, "writes a checkpoint to a path chosen by the graph (TF1 saver op)"),
    "SaveSlices": (_M, "writes a checkpoint to a path chosen by the graph (TF1 saver op)"),
    "DatasetToTFRecord": (_C, "writes a dataset to a file path"),
    "ExperimentalDatasetToTFRecord": (_C, "writes a dataset to a file path"),
    "SaveDataset": (_C, "writes a dataset snapshot to a directory"),
    "SaveDatasetV2": (_C, "writes a dataset snapshot to a directory"),
    "DistributedSave": (_C, "writes a dataset snapshot to a directory through the tf.data service"),
    "SnapshotDataset": (_H, "writes dataset snapshots to a directory"),
    "SnapshotDatasetV2": (_H, "writes dataset snapshots to a directory"),
    "CacheDataset": (_H, "writes a dataset cache to a file path"),
    "CacheDatasetV2": (_H, "writes a dataset cache to a file path"),
    # -- debugger ops: dump tensors to file:// or grpc:// URLs
    "DebugIdentity": (_C, "dumps tensors to debug URLs (file:// or grpc://)"),
    "DebugIdentityV2": (_C, "writes tensors to a tfdbg dump directory"),
    "DebugIdentityV3": (_C, "dumps tensors to debug URLs (file:// or grpc://)"),
    "DebugNanCount": (_C, "dumps tensor statistics to debug URLs (file:// or grpc://)"),
    "DebugNumericSummary": (_C, "dumps tensor statistics to debug URLs (file:// or grpc://)"),
    "Copy": (_H, "debugger copy op: dumps tensors to debug URLs"),
    "CopyHost": (_H, "debugger copy op: dumps tensors to debug URLs"),
    # -- reads files or lists the file system
    "ReadFile": (_H, "reads a whole file named by a tensor into the graph"),
    "MatchingFiles": (_H, "lists the file system with a glob pattern"),
    "WholeFileReader": (_H, "reads whole files"),
    "WholeFileReaderV2": (_H, "reads whole files"),
    "TextLineReader": (_H, "reads text files"),
    "TextLineReaderV2": (_H, "reads text files"),
    "FixedLengthRecordReader": (_H, "reads files"),
    "FixedLengthRecordReaderV2": (_H, "reads files"),
    "TFRecordReader": (_H, "reads record files"),
    "TFRecordReaderV2": (_H, "reads record files"),
    "LMDBReader": (_H, "opens LMDB databases"),
    "IdentityReader": (_M, "reader queue op"),
    "IdentityReaderV2": (_M, "reader queue op"),
    "ReaderReadV2": (_M, "reads through a reader op"),
    "ReaderRead": (_M, "reads through a reader op"),
    "LoadAndRemapMatrix": (_H, "reads a checkpoint from a path chosen by the graph"),
    "GenerateVocabRemapping": (_H, "reads vocabulary files from paths chosen by the graph"),
    "LoadDataset": (_H, "reads a saved dataset from a directory"),
    "ExperimentalLMDBDataset": (_H, "opens LMDB databases"),
    "LMDBDataset": (_H, "opens LMDB databases"),
    "SqlDataset": (_H, "opens a SQLite database and runs a query"),
    "ExperimentalSqlDataset": (_H, "opens a SQLite database and runs a query"),
    "TFRecordDataset": (_M, "reads record files"),
    "TFRecordDatasetV2": (_M, "reads record files"),
    "TextLineDataset": (_M, "reads text files"),
    "FixedLengthRecordDataset": (_M, "reads files"),
    "FixedLengthRecordDatasetV2": (_M, "reads files"),
    "ImmutableConst": (_M, "memory-maps a region of a file"),
    "DecodeProtoV2": (_M, "decodes protos with a descriptor source that may be a file path"),
    "EncodeProto": (_M, "encodes protos with a descriptor source that may be a file path"),
    # -- configures the file system or talks to services
    "FileSystemSetConfiguration": (_H, "changes file-system settings of the process"),
    "GcsConfigureCredentials": (_H, "installs cloud-storage credentials"),
    "GcsConfigureBlockCache": (_M, "configures cloud-storage access"),
    "DataServiceDataset": (_H, "connects to a tf.data service address"),
    "DataServiceDatasetV2": (_H, "connects to a tf.data service address"),
    "DataServiceDatasetV3": (_H, "connects to a tf.data service address"),
    "DataServiceDatasetV4": (_H, "connects to a tf.data service address"),
    "RegisterDataset": (_H, "registers a dataset with a tf.data service address"),
    "RegisterDatasetV2": (_H, "registers a dataset with a tf.data service address"),
    "Rpc": (_H, "calls a remote procedure over the network"),
    "TryRpc": (_H, "calls a remote procedure over the network"),
    "RpcCall": (_H, "calls a remote procedure over the network"),
    "RpcClient": (_H, "opens a network RPC client"),
    "RpcServer": (_H, "opens a network RPC server"),
    "RpcServerStart": (_H, "starts a network RPC server"),
    # -- summaries: writers choose their own log directory or database
    "CreateSummaryFileWriter": (_H, "creates a summary writer on a log directory chosen by the graph"),
    "CreateSummaryDbWriter": (_H, "creates a summary writer on a SQLite database chosen by the graph"),
    "WriteSummary": (_M, "writes a summary event"),
    "WriteRawProtoSummary": (_M, "writes a raw summary event"),
    "WriteScalarSummary": (_M, "writes a summary event"),
    "WriteHistogramSummary": (_M, "writes a summary event"),
    "WriteImageSummary": (_M, "writes a summary event"),
    "WriteAudioSummary": (_M, "writes a summary event"),
    "WriteGraphSummary": (_M, "writes a summary event"),
    "ImportEvent": (_M, "writes a serialized summary event"),
}
"""Op name -> (severity, what it does). Op names are case-sensitive in TensorFlow, as here."""


def judge_tf_op(op: str) -> tuple[Severity, str] | None:
    """The table entry of ``op`` (internal ``_``-prefixed spellings included), or ``None`` if it is harmless."""
    hit = TF_DANGEROUS_OPS.get(op)
    if hit is None and op.startswith("_"):
        hit = TF_DANGEROUS_OPS.get(op.lstrip("_"))
    return hit
