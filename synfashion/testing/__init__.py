"""Test infrastructure shipped with the package: a Hub-compatible server on loopback and small fixture builders.

Nothing here is a product feature; it exists so the Hub round trip (push, load_dataset, pull) is exercised over
real HTTP with the real clients, offline. `hub_server` imports only the standard library, so a process can start
a server and then point `HF_ENDPOINT` at it before importing huggingface_hub or datasets.
"""

from .hub_server import Fault, HubServer, running_hub

__all__ = ["Fault", "HubServer", "running_hub"]
