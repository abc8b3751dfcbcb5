"""Pure recurrence functions on tensors, each fast version beside its plain-loop reference."""
