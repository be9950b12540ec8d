"""Open-weight models through diffusers: Wan 2.x and LTX-Video (torch imported lazily)."""
