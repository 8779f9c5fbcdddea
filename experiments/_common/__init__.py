"""Shared experiment infrastructure: flags, registries, data, reports, plots, profiles.

Public API (experiments import from here, never from the private modules):

* CLI: :class:`UsageError`, :func:`run` (absl ``app.run`` with one-line errors: exit
  code 2 for bad input, 1 for disk full / permissions), :func:`report_errors`,
  :func:`define_config_file` (``--config`` with checked numbers), :func:`check_config_numbers`,
  :func:`check_keywords`, :func:`fail`, :func:`check_workdir`, :func:`lock_workdir`
  (the workdir lock every main holds), :func:`split_list`,
  :func:`parse_choices`, :func:`parse_int_list`, :func:`parse_float_map`.
* Registries: :class:`Registry`, :func:`model_registry`, :func:`optimizer_registry`,
  :func:`dataset_registry` and the contract name lists.
* Data: :class:`Splits`, :func:`load_splits`, :func:`take`.
* Reports: :func:`mean_std`, :func:`format_mean_std`, :func:`aggregate`,
  :func:`markdown_table`, :func:`write_csv`, :func:`write_tables`, :func:`write_json`.
* Plots (Agg backend): :func:`plot_curves`, :func:`plot_profile`.
* Performance profiles: :class:`Profile`, :func:`performance_ratios`,
  :func:`performance_profile`, :func:`profile_rows`.
"""

from experiments._common._cli import EXIT_ENVIRONMENT
from experiments._common._cli import EXIT_USAGE
from experiments._common._cli import Shortcuts
from experiments._common._cli import UsageError
from experiments._common._cli import check_config_numbers
from experiments._common._cli import check_keywords
from experiments._common._cli import check_workdir
from experiments._common._cli import define_config_file
from experiments._common._cli import define_workdir
from experiments._common._cli import fail
from experiments._common._cli import lock_workdir
from experiments._common._cli import parse_choices
from experiments._common._cli import parse_float_map
from experiments._common._cli import parse_int_list
from experiments._common._cli import report_errors
from experiments._common._cli import run
from experiments._common._cli import split_list
from experiments._common._data import Splits
from experiments._common._data import load_splits
from experiments._common._data import take
from experiments._common._plots import plot_curves
from experiments._common._plots import plot_profile
from experiments._common._plots import save_figure
from experiments._common._profiles import Profile
from experiments._common._profiles import performance_profile
from experiments._common._profiles import performance_ratios
from experiments._common._profiles import profile_rows
from experiments._common._registry import DATASET_NAMES
from experiments._common._registry import DATASET_PREFIXES
from experiments._common._registry import MODEL_NAMES
from experiments._common._registry import OPTIMIZER_NAMES
from experiments._common._registry import Registry
from experiments._common._registry import dataset_name
from experiments._common._registry import dataset_registry
from experiments._common._registry import model_registry
from experiments._common._registry import optimizer_registry
from experiments._common._report import aggregate
from experiments._common._report import format_mean_std
from experiments._common._report import markdown_table
from experiments._common._report import mean_std
from experiments._common._report import write_csv
from experiments._common._report import write_json
from experiments._common._report import write_tables

__all__ = [
    "DATASET_NAMES",
    "DATASET_PREFIXES",
    "EXIT_ENVIRONMENT",
    "EXIT_USAGE",
    "MODEL_NAMES",
    "OPTIMIZER_NAMES",
    "Profile",
    "Registry",
    "Splits",
    "Shortcuts",
    "UsageError",
    "aggregate",
    "check_config_numbers",
    "check_keywords",
    "check_workdir",
    "dataset_name",
    "dataset_registry",
    "define_config_file",
    "define_workdir",
    "fail",
    "format_mean_std",
    "load_splits",
    "lock_workdir",
    "markdown_table",
    "mean_std",
    "model_registry",
    "optimizer_registry",
    "parse_choices",
    "parse_float_map",
    "parse_int_list",
    "report_errors",
    "performance_profile",
    "performance_ratios",
    "plot_curves",
    "plot_profile",
    "save_figure",
    "profile_rows",
    "run",
    "split_list",
    "take",
    "write_csv",
    "write_json",
    "write_tables",
]
