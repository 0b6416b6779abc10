#!/usr/bin/env python3
import os
import sys


def main() -> None:
    from medic.embedded import detect

    # In a checkout where `make run` created var/medic.sqlite3, commands reach that database
    # without MEDIC_EMBEDDED=1 being typed again (see medic/embedded.py for the guard it keeps).
    detect()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
