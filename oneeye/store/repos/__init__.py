"""Repositories: one per aggregate, the only code outside the ORM that reads and writes rows.

Each module here takes a SQLAlchemy ``Session`` and returns value types, never ORM rows, so
services above the store see plain frozen dataclasses. Import the module you need directly
(``from oneeye.store.repos import templates``); this package deliberately imports nothing.
"""
