"""Simulators of Vast.ai and ComfyUI, the emulated Kubernetes API and the dev stack."""
