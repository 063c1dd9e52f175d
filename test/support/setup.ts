import 'aws-sdk-client-mock-vitest/extend';
import '../../scripts/local/polyfills.js';
