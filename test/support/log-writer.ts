/**
 * A child process for the torn-write test: appends numbered records to a RecordLog in batches as
 * fast as it can, and prints "flushed N" once the first N records are durable. The test kills it
 * with SIGKILL at a random moment.
 *
 *   node --import tsx test/support/log-writer.ts DIR
 */
import { RecordLog } from '../../coordinator/federation/record-log.js';
import { numberedRecord } from './numbered-records.js';

const log = await RecordLog.open(process.argv[2]!);
let next = log.recovered.records.length;
for (;;) {
  const batch = 1 + (next % 97);
  for (let i = 0; i < batch; i++) log.append(numberedRecord(next++));
  await log.flush();
  process.stdout.write(`flushed ${next}\n`);
}
