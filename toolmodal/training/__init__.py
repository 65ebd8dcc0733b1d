"""Training: the SFT curriculum (selection -> arguments -> joint) and GRPO, fast on the CPU."""
