import sys

from telemon.app.cli import main

sys.exit(main())
