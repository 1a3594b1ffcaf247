import sys

from components.cli import main
from components.env import keep_freed_buffers

keep_freed_buffers()
sys.exit(main())
