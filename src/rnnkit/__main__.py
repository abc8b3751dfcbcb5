"""``python -m rnnkit``: the ``rnnkit`` command, so ``torchrun --nproc-per-node N -m rnnkit
train <task> ...`` trains any task on N processes."""

from rnnkit.cli import main

if __name__ == "__main__":
    main()
