"""otp-pro's tables: the core's Alembic migrations, applied to the database otp-pro uses (see otp_pro_django.schema).

Not atomic: Alembic runs its own transactions on its own connection, and on SQLite a
transaction Django held open around it would keep the file locked against it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import migrations


def forwards(apps: Any, schema_editor: Any) -> None:
    from otp_pro_django import schema
    from otp_pro_django.instance import close_otp

    if schema.is_otp_database(schema_editor.connection):
        close_otp()  # an OtpPro made before the tables existed would keep its refusal
        schema.upgrade(schema.url_of(schema_editor.connection))


def backwards(apps: Any, schema_editor: Any) -> None:
    from otp_pro_django import schema
    from otp_pro_django.instance import close_otp

    if schema.is_otp_database(schema_editor.connection):
        close_otp()
        schema.remove(schema.url_of(schema_editor.connection))


class Migration(migrations.Migration):
    atomic = False
    initial = True
    dependencies: ClassVar[list[tuple[str, str]]] = []
    operations: ClassVar[list[Any]] = [migrations.RunPython(forwards, backwards, elidable=False)]
