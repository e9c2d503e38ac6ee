// The seed's "Глобальный клиент" example, as written there apart from the import path.
import { instanceManagerClient } from 'instance-manager-client';

// Установка базового URL
instanceManagerClient.setBaseUrl('http://your-server:3000');

// Использование
const instances = await instanceManagerClient.getAllInstances();
