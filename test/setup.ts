import { configureLogging } from '@cctv/core';

// Tests are quiet unless asked: CCTV_TEST_LOG=debug npm test shows what the parts log.
configureLogging({ level: (process.env.CCTV_TEST_LOG as 'debug' | undefined) ?? 'silent', format: 'pretty' });
