"""Public losses API: Modules, functional forms and the seed's Function-style names."""

from keydnn.infrastructure.losses import *  # noqa: F403
from keydnn.infrastructure.losses import __all__  # noqa: F401
