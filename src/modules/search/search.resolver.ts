import { Arg, Ctx, Query, Resolver } from 'type-graphql';
import { CurrentPrincipal, type Principal, type RequestContext } from '../kernel';
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
    @Ctx() context: RequestContext,
  ): Promise<SearchResultView> {
    // The request's loaders: batched with the items' owners and accounts, and the account loader applies visibility.
    return this.searches.search(principal, input, {
      users: (ids) => context.loaders.user.loadMany(ids),
      accounts: (ids) => context.loaders.account.loadMany(ids),
    });
  }
}
