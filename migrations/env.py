"""Alembic environment: runs migrations over asyncpg against the DSN the caller passes in."""

import asyncio

import asyncpg
from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

dsn = context.config.attributes["dsn"]


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def main() -> None:
    engine = create_async_engine("postgresql+asyncpg://", async_creator=lambda: asyncpg.connect(dsn))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(main())
