"""The one pipeline: what flows (``frames``), how it is set (``settings``), the stages built
from the settings (``builder``) and the steerable live session that runs them (``session``)."""
