import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { type TaskTokenResult, type TaskTokens, taskTokenOutcome } from './runner.js';

/**
 * Task tokens answered through the emulated account's Cases table: moto's Step Functions runs no
 * execution, so nothing there would receive SendTaskSuccess. Answering puts `TASKTOKEN#<token>` in the
 * table; the local runner, waiting on that token, polls for it. Any process can answer (a `cordon
 * approve --endpoint` beside the demo or a `cordon start --endpoint`), and everything before the
 * answer, the conditional update of the case included, is the code that runs against AWS.
 */
export function tableTaskTokens(ddb: DynamoDBDocumentClient, table: string, pollMs = 200): TaskTokens {
  const key = (token: string) => ({ pk: `TASKTOKEN#${token}`, sk: 'ANSWER' });
  return {
    async answer(token, result) {
      await ddb.send(
        new PutCommand({
          TableName: table,
          Item: { ...key(token), result },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    },
    async wait(token, signal) {
      while (!signal.aborted) {
        const out = await ddb.send(
          new GetCommand({ TableName: table, Key: key(token), ConsistentRead: true }),
        );
        const result = out.Item?.result as TaskTokenResult | undefined;
        if (result) return taskTokenOutcome(result);
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
      throw signal.reason;
    },
  };
}

/** The same, for the emulated account at `endpoint`. */
export function localTaskTokens(endpoint: string, region: string, table: string): TaskTokens {
  const ddb = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint,
      region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 2,
    }),
  );
  return tableTaskTokens(ddb, table);
}
