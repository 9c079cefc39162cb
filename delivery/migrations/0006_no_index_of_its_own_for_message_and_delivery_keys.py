import django.db.models.deletion
from django.db import migrations, models

from portal.migration_operations import index_dropped_without_blocking


class Migration(migrations.Migration):
    # The indexes are dropped CONCURRENTLY on PostgreSQL, which cannot run in a transaction.
    atomic = False

    dependencies = [
        ('delivery', '0005_tenant_status_index'),
        ('ingest', '0003_message_claims'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='delivery',
                    name='message',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='ingest.message'),
                ),
                migrations.AlterField(
                    model_name='deliveryattempt',
                    name='delivery',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='attempts', to='delivery.delivery'),
                ),
            ],
            database_operations=[
                index_dropped_without_blocking(table="delivery_delivery", index="delivery_delivery_message_id_8b851251", column="message_id"),
                index_dropped_without_blocking(table="delivery_deliveryattempt", index="delivery_deliveryattempt_delivery_id_f298a498", column="delivery_id"),
            ],
        ),
    ]
