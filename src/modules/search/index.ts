// Search's public face: its module and its service's types.
export { searchModule, type SearchServices } from './search.module';
export type { SearchService, SearchResultView } from './search.service';
