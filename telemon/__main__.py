import sys

from telemon.cli import main

sys.exit(main())
