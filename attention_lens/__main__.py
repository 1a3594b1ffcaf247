import sys

from attention_lens.cli import main
from attention_lens.env import keep_freed_buffers

keep_freed_buffers()
sys.exit(main())
