"""Shared pytest set-up.

The unit tests solve tiny problems, for which torch's intra-op thread pool costs more than it
saves; on a loaded 2-core machine its spinning threads made single tests 100x slower. One
thread keeps the suite fast and its timings independent of the machine's load.
"""

import torch

torch.set_num_threads(1)
