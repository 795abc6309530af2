"""Warehouse schemas: names that say what they hold, one definition for both warehouses."""

from __future__ import annotations

from deactivation.dead_letters import DEAD_LETTER_TYPES, DeadLetterType
from deactivation.schemas import ALL_TABLES, DEACTIVATION_ERRORS, DUCKDB_TYPES, HISTORY_TABLES, HOUR_LOADS


def test_history_tables_are_plural_carry_raw_hour_and_partition_on_it():
    assert [t.name for t in HISTORY_TABLES] == ["deactivations", "sites", "deactivation_errors"]
    for table in HISTORY_TABLES:
        assert "raw_hour" in table.column_names and table.partition_by == "raw_hour"
        assert next(c for c in table.columns if c.name == "raw_hour").required
    assert set(ALL_TABLES) == {t.name for t in (*HISTORY_TABLES, HOUR_LOADS)}


def test_every_column_type_maps_to_duckdb_and_names_are_unique():
    for table in ALL_TABLES.values():
        assert len(set(table.column_names)) == len(table.column_names), table.name
        assert {c.type for c in table.columns} <= set(DUCKDB_TYPES)


def test_personal_data_has_no_column_in_history():
    personal = {"admin_email", "user_email", "first_name", "last_name", "ip_address", "remote_addr"}
    for table in HISTORY_TABLES:
        assert not personal & set(table.column_names), table.name


def test_dead_letter_types_are_documented_on_the_error_table():
    [error_type] = [c for c in DEACTIVATION_ERRORS.columns if c.name == "error_type"]
    assert tuple(t.value for t in DeadLetterType) == DEAD_LETTER_TYPES
    assert all(isinstance(t, str) for t in DEAD_LETTER_TYPES) and error_type.required
