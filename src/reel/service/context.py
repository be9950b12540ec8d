"""The long-lived collaborators a use case needs, built once per process from Settings."""

from __future__ import annotations

from dataclasses import dataclass

from reel.config import Settings
from reel.db.migrate import ensure_current, upgrade
from reel.db.session import Database, open_database
from reel.net import FetchPolicy
from reel.queue import Dispatcher, open_dispatcher
from reel.service.catalog import Catalog, load_catalog
from reel.storage import Storage, open_storage

#: Where an image-URL refusal points: the operator setting that allows a trusted internal host.
IMAGE_HOST_HINT = (
    "A server operator can allow a trusted internal image host with "
    "REEL_IMAGE_FETCH_ALLOW_HOSTS=host:port (see docs/configuration.md)."
)


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    storage: Storage
    dispatcher: Dispatcher
    catalog: Catalog

    @property
    def fetch_policy(self) -> FetchPolicy:
        s = self.settings
        return FetchPolicy(
            allow_hosts=frozenset(s.image_fetch_allow_hosts),
            max_bytes=s.image_max_bytes,
            timeout=s.image_fetch_timeout,
            refusal_hint=IMAGE_HOST_HINT,
        )

    @property
    def webhook_policy(self) -> FetchPolicy:
        """Webhook targets: the image-URL rules, own allow-list, no redirects, small answers."""
        s = self.settings
        return FetchPolicy(
            allow_hosts=frozenset(s.webhook_allow_hosts),
            max_bytes=64 * 1024,
            timeout=s.webhook_timeout,
            max_redirects=0,
        )

    def close(self) -> None:
        self.db.dispose()


def build_services(settings: Settings) -> Services:
    return Services(
        settings=settings,
        db=open_database(settings),
        storage=open_storage(settings),
        dispatcher=open_dispatcher(settings),
        catalog=load_catalog(settings.models_file),
    )


def prepare_database(services: Services) -> None:
    """SQLite migrates itself on start; elsewhere migrations are a deploy step."""
    if services.settings.is_sqlite:
        upgrade(services.db.engine)
    else:
        ensure_current(services.db.engine)
