"""Errors in the config files themselves, met while Hydra composes a command's config.

Hydra reports a YAML syntax error in a config file (``--config-dir my_conf space=my_space``) with
a traceback of about a hundred lines and exit code 1, and offers no hook to report it otherwise: it
prints the traceback itself unless ``HYDRA_FULL_ERROR`` is set, in which case it raises. So the
entry points set it while Hydra runs and report what comes out: a YAML error as one line naming
the file, line and column (exit code 2, like every bad input), Hydra's own short errors (an unknown
config group option, a key not in the config) as Hydra prints them (exit code 1).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import yaml
from hydra.errors import CompactHydraException
from omegaconf.errors import OmegaConfBaseException

from supernet.errors import yaml_error


def one_line_config_errors(main: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap a ``@hydra.main`` function (an entry point) so that errors in the config files are
    reported in one line. With ``HYDRA_FULL_ERROR`` or ``SUPERNET_DEBUG`` set, Hydra's reporting
    is left as it is."""

    @functools.wraps(main)
    def entry() -> Any:
        if os.environ.get("HYDRA_FULL_ERROR") or os.environ.get("SUPERNET_DEBUG"):
            return main()
        os.environ["HYDRA_FULL_ERROR"] = "1"
        try:
            return main()
        except yaml.YAMLError as err:
            print(f"error: a config file is not valid YAML: {yaml_error(err)}", file=sys.stderr)
            sys.exit(2)
        except CompactHydraException as err:
            cause = err.__cause__  # Hydra adds the cause when it is OmegaConf's (the key that failed)
            print(f"{err}\n{cause}" if isinstance(cause, OmegaConfBaseException) else err, file=sys.stderr)
            sys.exit(1)
        finally:
            os.environ.pop("HYDRA_FULL_ERROR", None)

    return entry
