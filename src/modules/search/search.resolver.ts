import { Arg, Query, Resolver } from 'type-graphql';
import { CurrentPrincipal, type Principal } from '../kernel';
import type { SearchResultView, SearchService } from './search.service';
import { SearchInput, SearchResult } from './search.types';

@Resolver()
export class SearchResolver {
  constructor(private readonly searches: SearchService) {}

  @Query(() => SearchResult, {
    description: 'Records you may read that match text and filters, a page of them, and facet counts beside',
  })
  search(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => SearchInput) input: SearchInput,
  ): Promise<SearchResultView> {
    return this.searches.search(principal, input);
  }
}
