"""Shared code for the muP / Shampoo / Muon course notebooks.

Layers (each imports only from those above it):
  device, data          -> where to run, MNIST, to_numpy, seeding
  models, optimizers, norms -> the objects the course is about (pure torch)
  experiments           -> the course protocols, returning numpy result objects
  plotting              -> figures from those results, save_figure
  coord_check           -> the coordinate check (``helpers.coord_check(...)``, the function;
                           import its other names with ``from helpers.coord_check import ...``)
"""

from helpers.coord_check import coord_check
from helpers.data import load_mnist
from helpers.device import get_device, seed_everything, to_numpy

__all__ = ["get_device", "seed_everything", "to_numpy", "load_mnist", "coord_check"]
