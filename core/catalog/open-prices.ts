// The price book as the runtime opens it: KEYWAY_PRICES_FILE read at start (a bad file is refused
// with a clear message and the embedded table serves), then the operator's overrides from the
// platform settings, applied again whenever the configuration snapshot changes.

import type { ConfigSnapshots } from '../credentials/snapshot.ts';
import type { Logger } from '../logger.ts';
import type { CatalogAliases, ModelCatalog } from './catalog.ts';
import { PRICE_OVERRIDES_SETTING, PriceBook } from './price-book.ts';

export function openPriceBook(
  aliases: ReadonlyMap<string, CatalogAliases>,
  catalog: ModelCatalog,
  filePath: string | undefined,
  snapshots: ConfigSnapshots,
  logger: Logger,
): PriceBook {
  const book = new PriceBook(aliases, catalog, filePath);
  if (filePath !== undefined) {
    try {
      const status = book.reloadFile();
      logger.info({ path: filePath, models: status.models }, 'KEYWAY_PRICES_FILE merged over the embedded price table');
    } catch (error) {
      logger.error(
        { path: filePath, error: (error as Error).message },
        `KEYWAY_PRICES_FILE ${filePath} refused: ${(error as Error).message}; the embedded price table is in use (fix the file, then POST /v1/platform/prices/reload)`,
      );
    }
  }
  book.applyOverrides(snapshots.current.platformSettings[PRICE_OVERRIDES_SETTING]);
  // Every management write refreshes the snapshot (on every instance that shares the database).
  snapshots.onChange((snapshot) => book.applyOverrides(snapshot.platformSettings[PRICE_OVERRIDES_SETTING]));
  return book;
}
