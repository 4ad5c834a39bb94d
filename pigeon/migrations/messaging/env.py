from pigeon.core.migrate import run_env
from pigeon.models import messaging_metadata

run_env(messaging_metadata)
