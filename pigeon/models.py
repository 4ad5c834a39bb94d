"""Every table, imported once so each database's metadata is complete."""

from pigeon.accounts import models as accounts_models  # noqa: F401
from pigeon.auth import models as auth_models  # noqa: F401
from pigeon.core import audit, leases, switches  # noqa: F401
from pigeon.core.db import AppBase, MessagingBase
from pigeon.email import models as email_models  # noqa: F401
from pigeon.messaging import models as messaging_models  # noqa: F401
from pigeon.notifications import models as notifications_models  # noqa: F401
from pigeon.push import models as push_models  # noqa: F401

app_metadata = AppBase.metadata
messaging_metadata = MessagingBase.metadata
