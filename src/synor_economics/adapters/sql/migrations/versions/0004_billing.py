"""Billing: account settings, discounts, commitments, credit grants, uptime, invoices, payments.

Revision ID: 0004_billing
Revises: 0003_usage_replacements
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from synor_economics.adapters.sql.tables import BigAmount, ExactDecimal, Seq

revision = "0004_billing"
down_revision = "0003_usage_replacements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("payment_terms_days", sa.Integer, nullable=False),
        sa.Column("anchor_day", sa.SmallInteger, nullable=False),
        sa.Column("reminder_after_days", sa.Integer, nullable=False),
        sa.Column("suspend_after_days", sa.Integer, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account", name="pk_billing_accounts"),
    )
    op.create_table(
        "billing_discounts",
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("percent", ExactDecimal(), nullable=True),
        sa.Column("amount", BigAmount(), nullable=True),
        sa.Column("scope_service", sa.String(100), nullable=True),
        sa.Column("scope_resource", sa.String(100), nullable=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=True),
        sa.Column("end_us", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("account", "id", name="pk_billing_discounts"),
    )
    op.create_table(
        "billing_commitments",
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("resource", sa.String(100), nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=False),
        sa.Column("unit_price", ExactDecimal(), nullable=False),
        sa.Column("currency", sa.String(10), nullable=False),
        sa.Column("term_months", sa.SmallInteger, nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account", "id", name="pk_billing_commitments"),
    )
    op.create_table(
        "credit_grants",
        sa.Column("seq", Seq, nullable=False, autoincrement=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("amount", BigAmount(), nullable=False),
        sa.Column("used", BigAmount(), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=True),
        sa.Column("scope_service", sa.String(100), nullable=True),
        sa.Column("scope_resource", sa.String(100), nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("broken_us", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_credit_grants"),
        sa.UniqueConstraint("account", "id", name="uq_credit_grants_account"),
    )
    op.create_table(
        "uptime_reports",
        sa.Column("seq", Seq, nullable=False, autoincrement=True),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("account", sa.String(200), nullable=True),
        sa.Column("period_start_us", sa.BigInteger, nullable=False),
        sa.Column("downtime_minutes", ExactDecimal(), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("reported_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_uptime_reports"),
        sa.UniqueConstraint("reference", name="uq_uptime_reports_reference"),
    )
    op.create_table(
        "invoices",
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("period_start_us", sa.BigInteger, nullable=False),
        sa.Column("period_end_us", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("issued_us", sa.BigInteger, nullable=False),
        sa.Column("due_us", sa.BigInteger, nullable=False),
        sa.Column("catalog_version", sa.String(100), nullable=False),
        sa.Column("catalog_digest", sa.String(64), nullable=False),
        sa.Column("rate", sa.String(100), nullable=True),
        sa.Column("subtotal", BigAmount(), nullable=False),
        sa.Column("credits_applied", BigAmount(), nullable=False),
        sa.Column("prepaid_applied", BigAmount(), nullable=False),
        sa.Column("total_due", BigAmount(), nullable=False),
        sa.Column("paid", BigAmount(), nullable=False),
        sa.Column("credited", BigAmount(), nullable=False),
        sa.Column("corrects", sa.String(32), nullable=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_invoices"),
    )
    op.create_index("ix_invoices_account_period", "invoices", ["account", "period_start_us"])
    op.create_index(
        "ix_invoices_one_per_period",
        "invoices",
        ["account", "period_start_us"],
        unique=True,
        sqlite_where=sa.text("kind = 'invoice' AND status <> 'void'"),
        postgresql_where=sa.text("kind = 'invoice' AND status <> 'void'"),
    )
    op.create_table(
        "invoice_counters",
        sa.Column("series", sa.String(16), nullable=False),
        sa.Column("last", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("series", name="pk_invoice_counters"),
    )
    op.create_table(
        "billing_notices",
        sa.Column("seq", Seq, nullable=False, autoincrement=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("invoice", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("days_overdue", sa.Integer, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_billing_notices"),
        sa.UniqueConstraint("invoice", "kind", name="uq_billing_notices_invoice"),
    )
    op.create_table(
        "payments",
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("invoice", sa.String(32), nullable=True),
        sa.Column("amount", BigAmount(), nullable=False),
        sa.Column("to_invoice", BigAmount(), nullable=False),
        sa.Column("to_prepaid", BigAmount(), nullable=False),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("reference", name="pk_payments"),
    )


def downgrade() -> None:
    for table in (
        "payments",
        "billing_notices",
        "invoice_counters",
        "invoices",
        "uptime_reports",
        "credit_grants",
        "billing_commitments",
        "billing_discounts",
        "billing_accounts",
    ):
        op.drop_table(table)
