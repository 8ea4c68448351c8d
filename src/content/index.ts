export { ContentStore, type BlobInfo, type Expected } from './store.js';
