from pigeon.core.migrate import run_env
from pigeon.models import app_metadata

run_env(app_metadata)
