"""Audits of a trained model that need only its inputs and outputs (black-box)."""
