/**
 * dynalite (4.0.0, the latest release) does not implement `TransactWriteItems`. This proxy,
 * for tests only, sits in front of a dynalite server and adds it: every request passes
 * through one queue (so a transaction is atomic with respect to all other requests), and a
 * transaction runs as dynalite's own conditional writes (its items are distinct, so they are
 * independent), after a snapshot of each item; when a condition fails, the writes that were
 * made are undone from the snapshots and the client gets a `TransactionCanceledException`
 * with one `CancellationReasons` entry per action, as DynamoDB answers. It also enforces DynamoDB's rules that matter to a store:
 * at most 100 actions, and no item twice in one transaction.
 *
 * Every condition is still evaluated by dynalite; only atomicity is provided here.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';

type Av = Record<string, AttributeValue>;
interface Action {
  TableName: string;
  Key?: Av;
  Item?: Av;
  ConditionExpression?: string;
  UpdateExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Av;
}
type TransactItem = { ConditionCheck?: Action; Put?: Action; Delete?: Action; Update?: Action };

export interface TransactionProxy {
  endpoint: string;
  close(): Promise<void>;
}

export async function startTransactionProxy(dynaliteEndpoint: string): Promise<TransactionProxy> {
  const target = new URL(dynaliteEndpoint);
  const client = new DynamoDBClient({
    endpoint: dynaliteEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    requestHandler: new NodeHttpHandler(),
  });
  const keyNames = new Map<string, string[]>();
  const keyOf = async (table: string, item: Av): Promise<Av> => {
    let names = keyNames.get(table);
    if (!names) {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: table }));
      names = (Table?.KeySchema ?? []).map((k) => k.AttributeName!);
      keyNames.set(table, names);
    }
    return Object.fromEntries(names.map((n) => [n, item[n]]));
  };

  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  const forward = (req: http.IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const out = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      out.on('error', reject);
      out.end(body);
    });

  const transact = async (items: TransactItem[]): Promise<{ status: number; body: unknown }> => {
    const error = (type: string, message: string, extra: object = {}) => ({
      status: 400,
      body: { __type: `com.amazonaws.dynamodb.v20120810#${type}`, message, ...extra },
    });
    if (!Array.isArray(items) || items.length === 0 || items.length > 100) {
      return error('ValidationException', 'TransactItems must have between 1 and 100 actions');
    }
    const actions = items.map((it) => {
      const [kind, action] = Object.entries(it)[0] as [keyof TransactItem, Action];
      return { kind, action };
    });
    const keys: Av[] = [];
    for (const { action } of actions) keys.push(action.Key ?? (await keyOf(action.TableName, action.Item!)));
    const seen = new Set(keys.map((k, i) => JSON.stringify([actions[i].action.TableName, k])));
    if (seen.size !== keys.length) {
      return error('ValidationException', 'Transaction request cannot include multiple operations on one item');
    }

    const snapshots: (Av | undefined)[] = [];
    const restore = async (i: number) => {
      const { TableName } = actions[i].action;
      const old = snapshots[i];
      if (old) await client.send(new PutItemCommand({ TableName, Item: old }));
      else await client.send(new DeleteItemCommand({ TableName, Key: keys[i] }));
    };
    const cond = (a: Action) => ({
      ConditionExpression: a.ConditionExpression,
      ExpressionAttributeNames: a.ExpressionAttributeNames,
      ExpressionAttributeValues: a.ExpressionAttributeValues,
    });
    /** Runs action i; false when its condition failed. A ConditionCheck leaves the item as it was. */
    const apply = async (i: number): Promise<boolean> => {
      const { kind, action: a } = actions[i];
      try {
        if (kind === 'Put') await client.send(new PutItemCommand({ TableName: a.TableName, Item: a.Item!, ...cond(a) }));
        else if (kind === 'Delete') await client.send(new DeleteItemCommand({ TableName: a.TableName, Key: keys[i], ...cond(a) }));
        else if (kind === 'Update') {
          await client.send(new UpdateItemCommand({ TableName: a.TableName, Key: keys[i], UpdateExpression: a.UpdateExpression, ...cond(a) }));
        } else {
          // dynalite evaluates the condition on a put of the item as it is (or of its bare key).
          await client.send(new PutItemCommand({ TableName: a.TableName, Item: snapshots[i] ?? keys[i], ...cond(a) }));
          if (!snapshots[i]) await client.send(new DeleteItemCommand({ TableName: a.TableName, Key: keys[i] }));
        }
        return true;
      } catch (err) {
        if (err instanceof ConditionalCheckFailedException) return false;
        throw err;
      }
    };

    // No item appears twice, so the actions are independent: snapshot and apply them all at once.
    snapshots.push(
      ...(await Promise.all(
        actions.map(async ({ action }, i) => (await client.send(new GetItemCommand({ TableName: action.TableName, Key: keys[i], ConsistentRead: true }))).Item),
      )),
    );
    const applied = await Promise.all(actions.map((_, i) => apply(i)));
    if (applied.every(Boolean)) return { status: 200, body: {} };
    await Promise.all(applied.flatMap((ok, i) => (ok && actions[i].kind !== 'ConditionCheck' ? [restore(i)] : [])));
    const codes = applied.map((ok) => (ok ? 'None' : 'ConditionalCheckFailed'));
    return error('TransactionCanceledException', `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes.join(', ')}]`, {
      CancellationReasons: codes.map((Code) => (Code === 'None' ? { Code } : { Code, Message: 'The conditional request failed' })),
    });
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      serialized(async () => {
        if (req.headers['x-amz-target'] === 'DynamoDB_20120810.TransactWriteItems') {
          const { status, body: answer } = await transact(JSON.parse(body.toString('utf8')).TransactItems);
          res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
          res.end(JSON.stringify(answer));
          return;
        }
        const answer = await forward(req, body);
        const headers = { ...answer.headers };
        delete headers['transfer-encoding'];
        res.writeHead(answer.status, headers);
        res.end(answer.body);
      }).catch((err: Error) => {
        res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: String(err.stack ?? err) }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: async () => {
      client.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
