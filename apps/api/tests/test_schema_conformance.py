"""The live schema, read from the catalog, is exactly spec section 2."""

from __future__ import annotations

from sqlalchemy import Engine, text

# (name, data_type, character_maximum_length, is_nullable, column_default)
SPEC_COLUMNS = [
    ("report_id", "uuid", None, "NO", "gen_random_uuid()"),
    ("provider_id", "uuid", None, "NO", None),
    ("report_type", "character varying", 50, "NO", None),
    ("format", "character varying", 10, "NO", None),
    ("period_start", "date", None, "YES", None),
    ("period_end", "date", None, "YES", None),
    ("file_path", "character varying", 255, "NO", None),
    ("file_size_bytes", "bigint", None, "NO", None),
    ("download_link_expires_at", "timestamp with time zone", None, "NO", None),
    ("downloaded", "boolean", None, "NO", "false"),
    ("scheduled", "boolean", None, "NO", "false"),
    ("status", "character varying", 20, "NO", "'pending'::character varying"),
    ("error_message", "text", None, "YES", None),
    ("created_at", "timestamp with time zone", None, "NO", "now()"),
]

SPEC_INDEXES = {
    "pk_generated_reports": "CREATE UNIQUE INDEX pk_generated_reports ON public.generated_reports "
    "USING btree (report_id)",
    "ix_generated_reports_provider_id_report_type": "CREATE INDEX "
    "ix_generated_reports_provider_id_report_type ON public.generated_reports "
    "USING btree (provider_id, report_type)",
    "ix_generated_reports_provider_id_created_at": "CREATE INDEX "
    "ix_generated_reports_provider_id_created_at ON public.generated_reports "
    "USING btree (provider_id, created_at DESC)",
    "ix_generated_reports_download_link_expires_at": "CREATE INDEX "
    "ix_generated_reports_download_link_expires_at ON public.generated_reports "
    "USING btree (download_link_expires_at)",
    "ix_generated_reports_status": "CREATE INDEX ix_generated_reports_status "
    "ON public.generated_reports USING btree (status)",
}

SPEC_CHECKS = {
    "ck_generated_reports_report_type_valid": "CHECK (((report_type)::text = ANY ((ARRAY["
    "'ACCOUNTANT_SUMMARY'::character varying, 'ACCOUNTANT_DETAIL'::character varying, "
    "'WEEKLY_SUMMARY'::character varying, 'MONTHLY_PERFORMANCE'::character varying, "
    "'RRNP_QUARTERLY'::character varying, 'WCB_TIMING'::character varying, "
    "'REJECTION_DIGEST'::character varying, 'DATA_PORTABILITY'::character varying])::text[])))",
    "ck_generated_reports_format_valid": "CHECK (((format)::text = ANY ((ARRAY["
    "'PDF'::character varying, 'CSV'::character varying, 'ZIP'::character varying])::text[])))",
    "ck_generated_reports_status_valid": "CHECK (((status)::text = ANY ((ARRAY["
    "'pending'::character varying, 'generating'::character varying, "
    "'ready'::character varying, 'failed'::character varying, "
    "'expired'::character varying])::text[])))",
    "ck_generated_reports_file_size_not_negative": "CHECK ((file_size_bytes >= 0))",
    "ck_generated_reports_period_bounds_paired": "CHECK (((period_start IS NULL) = "
    "(period_end IS NULL)))",
    "ck_generated_reports_period_order": "CHECK ((period_end >= period_start))",
    "ck_generated_reports_period_matches_type": "CHECK ((((report_type)::text = "
    "'DATA_PORTABILITY'::text) = (period_start IS NULL)))",
    "ck_generated_reports_portability_is_zip": "CHECK ((((report_type)::text <> "
    "'DATA_PORTABILITY'::text) OR ((format)::text = 'ZIP'::text)))",
}


def test_columns_are_the_spec_columns_in_order(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT column_name, data_type, character_maximum_length, is_nullable, "
                "column_default FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = 'generated_reports' "
                "ORDER BY ordinal_position"
            )
        ).all()
    assert [tuple(r) for r in rows] == SPEC_COLUMNS


def test_primary_key_is_report_id(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.conname, a.attname FROM pg_constraint c "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
                "WHERE c.conrelid = 'generated_reports'::regclass AND c.contype = 'p'"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("pk_generated_reports", "report_id")]


def test_provider_id_references_providers(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'generated_reports'::regclass AND contype = 'f'"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (
            "fk_generated_reports_provider_id_providers",
            "FOREIGN KEY (provider_id) REFERENCES providers(provider_id)",
        )
    ]


def test_spec_indexes_exist_with_their_columns_and_order(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = 'public' AND tablename = 'generated_reports'"
            )
        ).all()
    live = {str(name): str(definition) for name, definition in rows}
    for name, definition in SPEC_INDEXES.items():
        assert live.get(name) == definition, name


def test_checks_are_named_and_say_the_rules(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'generated_reports'::regclass AND contype = 'c'"
            )
        ).all()
    live = {str(name): str(definition) for name, definition in rows}
    for name, definition in SPEC_CHECKS.items():
        assert live.get(name) == definition, name


def test_providers_table_is_small_and_faithful(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_name = 'providers' "
                "ORDER BY ordinal_position"
            )
        ).all()
    columns = {r[0]: tuple(r[1:]) for r in rows}
    assert columns["provider_id"] == ("uuid", "NO", "gen_random_uuid()")
    assert columns["created_at"] == ("timestamp with time zone", "NO", "now()")
    assert columns["updated_at"] == ("timestamp with time zone", "NO", "now()")
