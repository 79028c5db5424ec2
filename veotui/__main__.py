import sys

from veotui.cli import main

sys.exit(main())
