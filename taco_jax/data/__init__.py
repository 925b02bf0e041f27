"""Data side of taco_jax: filelists, the mel cache, validation, bucketing and batching."""

from taco_jax.data.filelist import DataError, Utterance, read_filelist
from taco_jax.data.mel_cache import MelCache, audio_config_hash, default_cache_dir
from taco_jax.data.pipeline import (
    Batch,
    BatchLoader,
    DataBundle,
    DataReport,
    EvalBatch,
    Item,
    assign_bucket,
    build_data,
    collate,
    eval_batches,
    global_mel_mean,
    holdout_split,
    prepare_split,
    sorted_buckets,
)

__all__ = [
    "Batch",
    "BatchLoader",
    "DataBundle",
    "DataError",
    "DataReport",
    "EvalBatch",
    "Item",
    "MelCache",
    "Utterance",
    "assign_bucket",
    "audio_config_hash",
    "build_data",
    "collate",
    "default_cache_dir",
    "eval_batches",
    "global_mel_mean",
    "holdout_split",
    "prepare_split",
    "read_filelist",
    "sorted_buckets",
]
