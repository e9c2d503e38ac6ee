// The seed's example (instance-manager-api.ru.md, "Пример использования" and "Проверка доступности"),
// as written there apart from the import path. The test runs it against the local stack.
import { InstanceManagerClient } from 'instance-manager-client';

// Создание клиента
const client = new InstanceManagerClient('http://localhost:3000');

// Создание WhatsApp инстанса
const whatsappInstanceId = await client.createWhatsAppInstance('user-001', {
  url: 'https://webhook.example.com/whatsapp',
  headers: { 'Authorization': 'Bearer token' }
});

// Создание Telegram инстанса
const telegramInstanceId = await client.createTelegramInstance(
  'user-002', 
  '123456789:AABBCCDDEEFFgghhiijjkkll',
  { url: 'https://webhook.example.com/telegram' }
);

// Получение API ключа
const apiKey = await client.getInstanceApiKey(whatsappInstanceId);

// Получение QR кода для WhatsApp
const qrCode = await client.getQRCode(whatsappInstanceId);

// Проверка статуса
const authStatus = await client.getAuthStatus(whatsappInstanceId);

// Управление инстансами
await client.startInstance(whatsappInstanceId);
await client.stopInstance(whatsappInstanceId);
await client.restartInstance(whatsappInstanceId);

// Получение логов
const logs = await client.getInstanceLogs(whatsappInstanceId, 50);

// Удаление инстанса
await client.deleteInstance(whatsappInstanceId);

const isAvailable = await client.ping();
console.log('API доступен:', isAvailable);
