"""Engines that generate through other video services: fal.ai, Replicate, OpenAI-compatible."""
