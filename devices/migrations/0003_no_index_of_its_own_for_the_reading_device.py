import django.db.models.deletion
from django.db import migrations, models

from portal.migration_operations import index_dropped_without_blocking


class Migration(migrations.Migration):
    # The index is dropped CONCURRENTLY on PostgreSQL, which cannot run in a transaction.
    atomic = False

    dependencies = [
        ('devices', '0002_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='reading',
                    name='device',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='readings', to='devices.device'),
                ),
            ],
            database_operations=[
                index_dropped_without_blocking(table="devices_reading", index="devices_reading_device_id_3947b8ce", column="device_id"),
            ],
        ),
    ]
