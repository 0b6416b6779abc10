from django.apps import AppConfig


class MedicConfig(AppConfig):
    name = "medic"
    verbose_name = "Medic"

    def ready(self) -> None:
        # Each app registers its own metrics collectors in its ready(): the core knows none.
        import medic.keyring  # registers the stored-secrets system check
        import medic.schema  # noqa: F401  (registers the OpenAPI auth extension)
        from medic import strict

        strict.install()  # JSON types are kept in v2 bodies
