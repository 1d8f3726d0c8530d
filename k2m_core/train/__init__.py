"""Training: the trainers and what they share — the session around every run, writing run
directories and checkpoints, distributed setup, batch sampling and the loop itself. Reading runs
and loading trained models (`k2m_core.runs`, `k2m_core.loading`) needs nothing from here."""
