#!/usr/bin/env python3
import os
import sys
from pathlib import Path


def main() -> None:
    from medic.embedded import detect

    # In a checkout where `make run` created var/medic.sqlite3, commands reach that database
    # without MEDIC_EMBEDDED=1 being typed again (see medic/embedded.py for the guard it keeps).
    detect()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")
    # In a checkout that `make run` has set up (var/medic.sqlite3 exists) and with no database
    # configured, commands act on that embedded instance, as the README shows them. Production
    # configures DATABASE_URL, so this never applies there, and its checks stay as strict.
    var = Path(os.environ.get("MEDIC_VAR_DIR") or Path(__file__).resolve().parent / "var")
    if (
        "MEDIC_EMBEDDED" not in os.environ
        and not os.environ.get("DATABASE_URL")
        and (var / "medic.sqlite3").exists()
    ):
        os.environ["MEDIC_EMBEDDED"] = "1"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
