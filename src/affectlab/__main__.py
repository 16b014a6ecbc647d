import sys

from affectlab.cli import main

sys.exit(main())
