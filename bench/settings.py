"""Settings for the bench's web server: the production settings plus one bare baseline view."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
