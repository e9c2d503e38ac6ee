// Compiled by `npm test`, never run: the request and response types refuse what the API refuses.
import { InstanceManagerClient, type Instance, type InstanceManagerError } from 'instance-manager-client';

export async function typedRequests(client: InstanceManagerClient): Promise<void> {
  // @ts-expect-error a Telegram instance needs its bot token
  await client.createInstance({ company_id: 'acme', provider: 'telegram' });
  // @ts-expect-error there is no such provider
  await client.createInstance({ company_id: 'acme', provider: 'viber' });
  // @ts-expect-error a webhook needs its url
  await client.createWhatsAppInstance('acme', { headers: { Authorization: 'Bearer t' } });
  // @ts-expect-error a delivery state is one of pending, failed, delivered, dead
  await client.getDeliveries('id', { state: 'lost' });

  const instance: Instance = await client.getInstance('id');
  // @ts-expect-error statuses are a closed set
  const impossible: boolean = instance.status === 'running';
  const created = await client.createInstance({ company_id: 'acme', provider: 'whatsappweb', type_instance: ['api'] });
  const port: number | undefined = created.process_result.details.ports.api;
  const failure = (error: InstanceManagerError): [number, string] => [error.status, error.code];
  void [impossible, port, failure];
}
