"""`balr compare` as a library: audio files in, a calibrated and explained LR out.

`config` (the `compare` config), `inputs` (checks before any model runs), `models` (the
models, shipped by default), `result` (`ComparisonResult`), `pipeline` (embedding ->
attributes -> LR -> calibrated LLR). The text and the HTML report are in `balr.report`,
the split of the calibrated LLR into additive parts in `balr.llr_split`.
"""

from balr.compare.config import CompareConfig, compare_config
from balr.compare.inputs import check_audio_files, check_explain, same_recording_warnings
from balr.compare.pipeline import Comparison, ComparisonPipeline, compare_files
from balr.compare.result import ComparisonResult
from balr.report.reference import load_reference_llrs
from balr.report.text import conditions_warning

__all__ = [
    "CompareConfig",
    "Comparison",
    "ComparisonPipeline",
    "ComparisonResult",
    "check_audio_files",
    "check_explain",
    "compare_config",
    "compare_files",
    "conditions_warning",
    "load_reference_llrs",
    "same_recording_warnings",
]
